//! TODO(skeleton): httpget
