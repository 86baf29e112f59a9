"""DKIM: the ``[dkim]`` settings and keys, signing, the self-check and the DNS records.

``keys`` reads private keys, ``settings`` the ``[dkim]`` table, ``canon`` holds the
relaxed canonicalization, ``signer`` signs, ``selfcheck`` verifies our own signatures and
``records`` prints and checks what DNS must publish.
"""
