"""Enterprise-Managed Authorization (MCP ext-auth; draft-ietf-oauth-identity-assertion-authz-grant).

The enterprise identity providers a project trusts to vouch for its end users with Identity
Assertion JWT Authorization Grants (ID-JAG), and the link from an IdP's (`iss`, `sub`) to our
end user. Data and policy only: the grant itself is `oauth.grants.jwt_bearer`.
"""
