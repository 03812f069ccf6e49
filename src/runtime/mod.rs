//! TODO(skeleton): runtime
