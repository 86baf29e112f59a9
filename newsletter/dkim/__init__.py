"""DKIM: the ``[dkim]`` settings and keys, signing, the self-check and the DNS records.

``keys`` reads private keys and signs digests, ``settings`` the ``[dkim]`` table,
``canon`` holds the relaxed canonicalization, ``canonicalizer`` applies it to messages
(shared pieces prepared once per edition), ``signer`` signs, ``processes`` runs signers
in worker processes, ``selfcheck`` verifies our own signatures and ``records`` prints and
checks what DNS must publish.
"""
