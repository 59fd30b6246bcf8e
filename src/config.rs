//! Client configuration: endpoint, region, addressing style, timeouts, retry policy.
