//! Caller authentication: bearer JWTs verified against JWKS or PEM keys, and the MCP
//! authorization spec's resource-server endpoints. (In progress: identity-and-policy issue.)
