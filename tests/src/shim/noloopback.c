/*
 * Preloaded into the reference Janus only (never into jsfu).
 *
 * Janus leaves out every interface marked IFF_LOOPBACK when it collects the
 * local addresses it gathers ICE candidates on, so on a test machine where
 * everything talks over 127.0.0.1 it would offer no usable candidate. This
 * wrapper forwards getifaddrs() to the C library and then removes the
 * IFF_LOOPBACK bit from each returned entry; Janus's ice_enforce_list then
 * narrows gathering down to 127.0.0.1. Nothing else is changed.
 *
 * Built by the jsfu-tests harness at run time:
 *   cc -shared -fPIC -o libnoloopback.so noloopback.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stddef.h>

int getifaddrs(struct ifaddrs **list) {
	static int (*next_impl)(struct ifaddrs **) = NULL;
	if(next_impl == NULL)
		next_impl = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
	if(next_impl == NULL)
		return -1;
	int result = next_impl(list);
	if(result != 0 || list == NULL)
		return result;
	struct ifaddrs *entry;
	for(entry = *list; entry != NULL; entry = entry->ifa_next)
		entry->ifa_flags &= ~(unsigned int)IFF_LOOPBACK;
	return result;
}
