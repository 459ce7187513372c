#!/bin/sh
# regen-config.sh KVNODE SRCDIR: rewrite etc/kvnode.conf and the generated
# table in docs/configuration.md and man/kvnode.conf.5.in from the config
# table (src/base/conf_keys.c).
# t/conf fails until this has been run after a change to the table.
set -eu
kvnode=$1
src=$2
"$kvnode" --print-config example > "$src/etc/kvnode.conf.tmp"
mv "$src/etc/kvnode.conf.tmp" "$src/etc/kvnode.conf"
"$kvnode" --print-config markdown > "$src/docs/.config-table.tmp"
awk -v table="$src/docs/.config-table.tmp" '
	/<!-- BEGIN GENERATED CONFIG TABLE -->/ {
		print; print ""
		while ((getline line < table) > 0) print line
		print ""; skip = 1; next
	}
	/<!-- END GENERATED CONFIG TABLE -->/ { skip = 0 }
	!skip { print }
' "$src/docs/configuration.md" > "$src/docs/configuration.md.tmp"
mv "$src/docs/configuration.md.tmp" "$src/docs/configuration.md"
rm -f "$src/docs/.config-table.tmp"
"$kvnode" --print-config man > "$src/man/kvnode.conf.5.in.tmp"
mv "$src/man/kvnode.conf.5.in.tmp" "$src/man/kvnode.conf.5.in"
