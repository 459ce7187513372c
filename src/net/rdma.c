/*
 * rdma: RDMA device discovery (built only with HAVE_RDMA).  The data path
 * does not use RDMA yet; this answers "is there a device" so `kvnode
 * --version` and the logs can say which transport a node would use.  TCP is
 * always available and is the fallback when no device exists.
 */
#include "config.h"

#include <infiniband/verbs.h>

#include "net/net.h"

int net_rdma_devices(void)
{
	int n = 0;
	struct ibv_device **list = ibv_get_device_list(&n);

	if (!list)
		return 0;
	ibv_free_device_list(list);
	return n;
}
