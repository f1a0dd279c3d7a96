"""A software WebAuthn authenticator for the SQL-level passkey tests (issue 33).

It does what a browser plus a platform authenticator do with the options the
extension hands out: `create` answers `navigator.credentials.create` (packed
"none" attestation, an ES256 / P-256 key), `get` answers
`navigator.credentials.get` (authenticator data, clientDataJSON, an ECDSA
signature). Every field a test may want to spoil is a keyword argument: the
origin, the rp id whose hash is signed, the flags (user verification), the
signature counter, the challenge, the signature itself.
"""
import base64
import hashlib
import json
import os
import struct

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, AT = 0x01, 0x04, 0x40


def b64u(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def unb64u(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _options(options):
    if isinstance(options, str):
        options = json.loads(options)
    return options["publicKey"]


class SoftAuthenticator:
    def __init__(self, origin, rp_id=None):
        self.origin = origin
        self.rp_id = rp_id
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.user_handle = None
        self.counter = 0

    def _cose_key(self):
        n = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: n.x.to_bytes(32, "big"), -3: n.y.to_bytes(32, "big")})

    def _client_data(self, kind, challenge, origin):
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}).encode()

    def create(self, options, *, origin=None, rp_id=None, flags=UP | UV, challenge=None):
        pk = _options(options)
        rp_id = rp_id or self.rp_id or pk["rp"]["id"]
        self.rp_id = self.rp_id or pk["rp"]["id"]
        self.user_handle = unb64u(pk["user"]["id"])
        cdj = self._client_data("webauthn.create", challenge or pk["challenge"], origin or self.origin)
        attested = bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id + self._cose_key()
        auth_data = hashlib.sha256(rp_id.encode()).digest() + bytes([flags | AT]) + struct.pack(">I", self.counter) + attested
        att = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": b64u(self.credential_id),
            "rawId": b64u(self.credential_id),
            "type": "public-key",
            "response": {"attestationObject": b64u(att), "clientDataJSON": b64u(cdj), "transports": ["internal"]},
            "extensions": {},
        }

    def get(self, options, *, origin=None, rp_id=None, flags=UP | UV, counter=None, challenge=None,
            spoil_signature=False, credential_id=None, user_handle=True):
        pk = _options(options)
        rp_id = rp_id or self.rp_id or pk.get("rpId")
        if counter is None:
            self.counter += 1
            counter = self.counter
        cdj = self._client_data("webauthn.get", challenge or pk["challenge"], origin or self.origin)
        auth_data = hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", counter)
        sig = self.key.sign(auth_data + hashlib.sha256(cdj).digest(), ec.ECDSA(hashes.SHA256()))
        if spoil_signature:
            sig = self.key.sign(b"something else", ec.ECDSA(hashes.SHA256()))
        cid = credential_id or self.credential_id
        response = {"authenticatorData": b64u(auth_data), "clientDataJSON": b64u(cdj), "signature": b64u(sig)}
        if user_handle and self.user_handle is not None:
            response["userHandle"] = b64u(self.user_handle)
        return {"id": b64u(cid), "rawId": b64u(cid), "type": "public-key", "response": response, "extensions": {}}
