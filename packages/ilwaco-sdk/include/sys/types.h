/* sys/types.h: the POSIX integer types the socket headers use. */
#ifndef ILWACO_SYS_TYPES_H
#define ILWACO_SYS_TYPES_H
#include <stddef.h>
#include <stdint.h>
#ifndef ILWACO_SSIZE_T_DEFINED
#define ILWACO_SSIZE_T_DEFINED
/** Signed byte count: a size or -1 with errno set. */
typedef int ssize_t;
#endif
typedef int32_t off_t;
typedef int pid_t;
typedef uint32_t socklen_t;
typedef uint16_t sa_family_t;
typedef uint16_t in_port_t;
typedef uint32_t in_addr_t;
#endif
