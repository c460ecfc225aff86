"""Sign-in for people at the built-in issuer: authorization code + PKCE, the sign-in page, the demo people."""
