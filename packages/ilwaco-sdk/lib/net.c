/*
 * The TCP/IP stack's sources live in lib/net/, one module per layer. The SDK build compiles
 * only the top level of lib/, so this file compiles them as one unit; each file in lib/net/ is
 * empty unless ILWACO_NET_UNITY is defined, so a build that also compiles lib/net/ directly
 * still links each definition once.
 */
#define ILWACO_NET_UNITY 1
#include "net/checksum.c"
#include "net/timer.c"
#include "net/ring.c"
#include "net/netif.c"
#include "net/ether.c"
#include "net/arp.c"
#include "net/ipv4.c"
#include "net/icmp.c"
#include "net/udp.c"
#include "net/tcp_cc.c"
#include "net/tcp_timer.c"
#include "net/tcp_output.c"
#include "net/tcp_input.c"
#include "net/socket.c"
#include "net/poll.c"
#include "net/inet.c"
#include "net/unistd.c"
#include "net/stats.c"
