//! Request signing (V1 and V4), shared by the client and the local server.
