# Source this to build FeedRank by hand: `. scripts/env.sh && swift build`.
# (It puts the project's librdkafka on PKG_CONFIG_PATH.)
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
