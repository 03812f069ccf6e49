//! Server-side apply and ownership tracking.
