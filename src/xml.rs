//! Typed XML bodies of every request and response, with bounded parsing.
