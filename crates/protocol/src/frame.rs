//! Size-prefixed frames.
