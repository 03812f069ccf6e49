//! TODO(skeleton): store
