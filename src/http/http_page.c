/*
 * http_page: GET / (a self-contained status page: inline CSS and a little
 * inline JavaScript, no external assets) and GET /status.json, which the
 * page fetches every few seconds to redraw itself.  The master's page
 * shows its node table (the cluster, as STAT reports it); a peer's shows
 * itself.  Request rates are computed by the page from successive totals.
 */
#include "config.h"

#include <inttypes.h>
#include <string.h>

#include "http/http_int.h"
#include "base/base.h"
#include "base/metrics.h"

void http_json_str(struct evbuffer *b, const char *s)
{
	evbuffer_add(b, "\"", 1);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			evbuffer_add_printf(b, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f || ch == '<' || ch == '>' || ch == '&')
			evbuffer_add_printf(b, "\\u%04x", ch); /* also keeps HTML out of it */
		else
			evbuffer_add(b, s, 1);
	}
	evbuffer_add(b, "\"", 1);
}

static uint64_t role_requests(int role)
{
	uint64_t t = 0;
	for (unsigned op = 0; op < KVN_METRIC_OPS; op++)
		for (unsigned r = 0; r < KVN_METRIC_RESULTS; r++)
			t += kvn_metric_load(&kvn_metrics_g.requests[role][op][r]);
	return t;
}

static void node_json(struct evbuffer *b, const char *id, const char *addr, const char *state, uint64_t dram_total,
		      uint64_t dram_used, uint64_t disk_total, uint64_t disk_used, uint64_t objects, uint64_t lag)
{
	evbuffer_add(b, "{\"id\":", 6);
	http_json_str(b, id);
	evbuffer_add(b, ",\"addr\":", 8);
	http_json_str(b, addr);
	evbuffer_add_printf(b,
			    ",\"state\":\"%s\",\"dram_total\":%" PRIu64 ",\"dram_used\":%" PRIu64
			    ",\"disk_total\":%" PRIu64 ",\"disk_used\":%" PRIu64 ",\"objects\":%" PRIu64
			    ",\"event_lag\":%" PRIu64 "}",
			    state, dram_total, dram_used, disk_total, disk_used, objects, lag);
}

void http_render_status(struct http_server *h, const struct http_snap *s, struct evbuffer *b)
{
	char why[256];
	const char *bad = http_unhealthy(s, why, sizeof why);
	int role = h->role;

	evbuffer_add_printf(b, "{\"role\":\"%s\",\"node\":", role == KVN_METRIC_MASTER ? "master" : "peer");
	http_json_str(b, h->node_id);
	evbuffer_add(b, ",\"version\":", 11);
	http_json_str(b, PACKAGE_VERSION);
	evbuffer_add_printf(b, ",\"uptime_ms\":%" PRIu64 ",\"now_ms\":%" PRIu64 ",\"health\":", kvn_metric_uptime_ms(),
			    kvn_wall_ms());
	http_json_str(b, bad ? bad : "ok");
	evbuffer_add_printf(b,
			    ",\"requests\":%" PRIu64 ",\"hits\":%" PRIu64 ",\"misses\":%" PRIu64
			    ",\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64,
			    role_requests(role), kvn_metric_load(&kvn_metrics_g.hits[role]),
			    kvn_metric_load(&kvn_metrics_g.misses[role]), kvn_metric_load(&kvn_metrics_g.bytes_in[role]),
			    kvn_metric_load(&kvn_metrics_g.bytes_out[role]));
	if (role == KVN_METRIC_MASTER && s->have_master) {
		evbuffer_add_printf(b, ",\"objects\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"nodes_total\":%" PRIu32,
				    s->mv.objects, s->mv.bytes, s->mv.nodes);
		evbuffer_add(b, ",\"nodes\":[", 10);
		for (uint32_t i = 0; i < s->nnodes; i++) {
			const struct master_view_node *n = &s->nodes[i];
			const char *state = n->alive ? "up" : n->left ? "left" : n->dead ? "dead" : "down";
			if (i)
				evbuffer_add(b, ",", 1);
			node_json(b, n->node_id, n->addr, state, n->dram_total, n->dram_used, n->disk_total,
				  n->disk_used, n->objects, n->event_lag);
		}
		evbuffer_add(b, "]", 1);
	} else if (role == KVN_METRIC_PEER && s->have_peer) {
		const struct peer_view *p = &s->pv;
		const char *state = p->left ? "left" : !p->attached ? "detached" : p->disk_hung ? "disk hung"
			: p->disk_readonly ? "disk read-only" : "up";
		evbuffer_add_printf(b, ",\"objects\":%" PRIu64 ",\"nodes_total\":1,\"nodes\":[", p->keys);
		node_json(b, p->node_id, h->addr, state, p->dram_total, p->dram_used + p->dram_pending, p->disk_total,
			  p->disk_used, p->keys, 0);
		evbuffer_add(b, "]", 1);
	} else {
		evbuffer_add(b, ",\"nodes_total\":0,\"nodes\":[]", 26);
	}
	evbuffer_add(b, "}\n", 2);
}

/* The page.  The table is drawn by the script from /status.json (first
 * at once, then every EVERY ms; ?every=MS overrides it, 200..60000), so
 * what it shows is never older than one refresh; #refreshes counts the
 * redraws and #updated says when the last one was. */
static const char page_head[] =
	"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	"<title>kvnode status</title>\n<style>\n"
	"body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}\n"
	"h1{font-size:1.3em;margin:0 0 .3em}\n"
	".meta{color:#555;margin-bottom:1em}\n.meta span{margin-right:1.5em}\n"
	"table{border-collapse:collapse;width:100%;max-width:70em;background:#fff}\n"
	"th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #ddd;vertical-align:middle}\n"
	"th{background:#eee}\n"
	".bar{position:relative;width:12em;height:1.1em;background:#e4e4e4;border-radius:3px;overflow:hidden}\n"
	".bar .fill{height:100%;background:#4a8}\n.bar .fill.hi{background:#c84}\n"
	".bar .txt{position:absolute;left:.4em;top:0;font-size:.8em;line-height:1.4em}\n"
	".state-up{color:#282}\n.state-down,.state-dead,.state-detached{color:#b22}\n"
	".bad{color:#b22;font-weight:bold}\n"
	"</style></head>\n<body>\n";

static const char page_body[] =
	"<div class=\"meta\"><span>health: <b id=\"health\">?</b></span>"
	"<span>uptime: <b id=\"uptime\">?</b></span><span>version: <b id=\"version\">?</b></span>"
	"<span>objects: <b id=\"objects\">?</b></span><span>requests/s: <b id=\"rate\">-</b></span>"
	"<span>hit ratio: <b id=\"hitratio\">-</b></span></div>\n"
	"<table><thead><tr><th>node</th><th>address</th><th>state</th><th>DRAM</th><th>disk</th>"
	"<th>objects</th><th>event lag</th></tr></thead>\n<tbody id=\"nodes\"></tbody></table>\n"
	"<p class=\"meta\">refreshes: <b id=\"refreshes\" data-count=\"0\">0</b>, last at "
	"<b id=\"updated\">never</b> <span id=\"error\" class=\"bad\"></span> "
	"&middot; <a href=\"/metrics\">/metrics</a> &middot; <a href=\"/health\">/health</a></p>\n"
	"<script>\n"
	"'use strict';\n"
	"var every=2000,m=/[?&]every=(\\d+)/.exec(location.search);\n"
	"if(m)every=Math.min(60000,Math.max(200,+m[1]));\n"
	"var prev=null,count=0;\n"
	"function $(id){return document.getElementById(id);}\n"
	"function size(n){var u=['B','KiB','MiB','GiB','TiB'],i=0;"
	"while(n>=1024&&i<u.length-1){n/=1024;i++;}return (i?n.toFixed(1):n)+' '+u[i];}\n"
	"function dur(ms){var s=Math.floor(ms/1000);if(s<120)return s+'s';if(s<7200)return Math.floor(s/60)+'m';"
	"return Math.floor(s/3600)+'h';}\n"
	"function bar(used,total){var d=document.createElement('div');d.className='bar';"
	"var f=document.createElement('div'),p=total?Math.min(100,100*used/total):0;"
	"f.className='fill'+(p>90?' hi':'');f.style.width=p.toFixed(1)+'%';d.appendChild(f);"
	"var t=document.createElement('span');t.className='txt';"
	"t.textContent=total?size(used)+' / '+size(total):'none';d.appendChild(t);"
	"d.setAttribute('data-used',used);d.setAttribute('data-total',total);return d;}\n"
	"function cell(tr,x,cls){var td=document.createElement('td');"
	"if(typeof x==='object')td.appendChild(x);else td.textContent=x;if(cls)td.className=cls;"
	"tr.appendChild(td);}\n"
	"function draw(s){$('health').textContent=s.health;$('health').className=s.health==='ok'?'':'bad';"
	"$('uptime').textContent=dur(s.uptime_ms);$('version').textContent=s.version;"
	"$('objects').textContent=s.objects===undefined?'?':s.objects;"
	"$('title').textContent='kvnode '+s.role+' '+s.node;"
	"if(prev&&s.now_ms>prev.now_ms)$('rate').textContent="
	"((s.requests-prev.requests)*1000/(s.now_ms-prev.now_ms)).toFixed(1);"
	"var l=s.hits+s.misses;$('hitratio').textContent=l?(100*s.hits/l).toFixed(1)+'%':'-';"
	"var tb=$('nodes');while(tb.firstChild)tb.removeChild(tb.firstChild);"
	"s.nodes.forEach(function(n){var tr=document.createElement('tr');tr.className='node';"
	"tr.setAttribute('data-node',n.id);cell(tr,n.id);cell(tr,n.addr);cell(tr,n.state,'state-'+n.state.split(' ')[0]);"
	"cell(tr,bar(n.dram_used,n.dram_total));cell(tr,bar(n.disk_used,n.disk_total));"
	"cell(tr,n.objects);cell(tr,n.event_lag);tb.appendChild(tr);});"
	"prev=s;count++;$('refreshes').textContent=count;$('refreshes').setAttribute('data-count',count);"
	"$('updated').textContent=new Date(s.now_ms).toISOString();$('error').textContent='';}\n"
	"function tick(){fetch('/status.json',{cache:'no-store'}).then(function(r){return r.json();})"
	".then(draw).catch(function(e){$('error').textContent='refresh failed: '+e;})"
	".then(function(){setTimeout(tick,every);});}\n"
	"tick();\n"
	"</script>\n</body></html>\n";

void http_render_page(struct http_server *h, struct evbuffer *b)
{
	evbuffer_add(b, page_head, sizeof page_head - 1);
	evbuffer_add_printf(b, "<h1 id=\"title\">kvnode %s ", h->role == KVN_METRIC_MASTER ? "master" : "peer");
	/* node ids are letters, digits, '.', '_' and '-' (node.id): nothing to escape */
	evbuffer_add_printf(b, "%s</h1>\n", h->node_id);
	evbuffer_add(b, page_body, sizeof page_body - 1);
}
