#include <amqp.h>
