"""DPoP proof checks (RFC 9449 §4.3), shared by the authorization server and resource servers.

`verify_proof` does the checks any receiver of a proof makes: one well-formed JWS with
`typ: dpop+jwt`, an asymmetric `alg` from the allowed list, a public `jwk` in its header that
verifies the signature, `jti`, `htm` and `htu` matching the request (query and fragment ignored),
`iat` within the window, and `ath` when an access token comes with it. What depends on where the
proof arrives (the `jti` replay cache, server nonces) is the caller's: `ReplayCache`, `NonceSigner`.
All JOSE is jwcrypto's, thumbprints included (RFC 7638).

The code lives in `mcpauth_rs.core` (the package imports it, and it imports no sibling module);
this module is its DPoP part's public name.
"""

from .core import (
    ALGORITHMS,
    IAT_FUTURE_SECONDS,
    IAT_PAST_SECONDS,
    MAX_JTI_LENGTH,
    MAX_PROOF_LENGTH,
    REPLAY_SECONDS,
    TYP,
    MemoryReplayCache,
    NonceSigner,
    Proof,
    ProofRejected,
    ReplayCache,
    access_token_hash,
    first_use,
    normalize_uri,
    replay_key,
    thumbprint,
    verify_proof,
)

__all__ = ["ALGORITHMS", "IAT_FUTURE_SECONDS", "IAT_PAST_SECONDS", "MAX_JTI_LENGTH", "MAX_PROOF_LENGTH",
           "MemoryReplayCache", "NonceSigner", "Proof", "ProofRejected", "REPLAY_SECONDS", "ReplayCache",
           "TYP", "access_token_hash", "first_use", "normalize_uri", "replay_key", "thumbprint",
           "verify_proof"]
