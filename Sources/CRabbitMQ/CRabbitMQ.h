// The one header of the CRabbitMQ module: rabbitmq-c's public headers plus fixed-arity shims for
// what Swift cannot call. Only MediaQueueAMQP imports this module.
#ifndef CRABBITMQ_H
#define CRABBITMQ_H

// rabbitmq-c 0.12+ moved its headers under rabbitmq-c/ and warns on the old flat paths; 0.11
// (Debian 12) only has the flat ones.
#if __has_include(<rabbitmq-c/amqp.h>)
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/framing.h>
#include <rabbitmq-c/tcp_socket.h>
#include <rabbitmq-c/ssl_socket.h>
#else
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>
#endif

#include <poll.h>
#include <sys/time.h>

/// `amqp_login_with_properties` is variadic (the SASL arguments), which Swift cannot call.
/// This fixes it to PLAIN with a user name and password, the only method MediaQueue uses.
static inline amqp_rpc_reply_t CRabbitMQ_login_plain(amqp_connection_state_t state,
                                                     const char *vhost, int channel_max,
                                                     int frame_max, int heartbeat,
                                                     const amqp_table_t *properties,
                                                     const char *user, const char *password) {
    return amqp_login_with_properties(state, vhost, channel_max, frame_max, heartbeat, properties,
                                      AMQP_SASL_METHOD_PLAIN, user, password);
}

#endif
