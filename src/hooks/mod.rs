//! TODO(skeleton): hooks
