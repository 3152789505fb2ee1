#include "../../.deps/librdkafka/include/librdkafka/rdkafka.h"
