/* kvnode: main (being written) */
#include "config.h"
#include "base/base.h"
int main(int argc, char **argv) { (void)argc; (void)argv; return 0; }
