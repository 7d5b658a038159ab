"""What the probes read of an X.509 certificate: its validity, subject and issuer.

The few fields before them are walked by hand in the DER bytes (RFC 5280,
section 4.1), so the daemon needs no X.509 library for a date and two names;
the binary form is what ``getpeercert(binary_form=True)`` returns even when
verification is off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

_NAME_ATTRIBUTES = {
    bytes.fromhex("550403"): "CN",
    bytes.fromhex("55040a"): "O",
    bytes.fromhex("55040b"): "OU",
    bytes.fromhex("550406"): "C",
}


@dataclass(frozen=True)
class CertificateFacts:
    """What a certificate says about itself."""

    not_before: float
    not_after: float
    """Seconds since the epoch."""
    subject: str
    issuer: str
    """``CN=…, O=…`` (common name, organisation, unit, country), as far as present."""


def _der_element(der: bytes, pos: int) -> tuple[int, int, int]:
    """Tag, start and end of the value of the DER element at ``pos``."""
    tag = der[pos]
    length = der[pos + 1]
    pos += 2
    if length & 0x80:
        size = length & 0x7F
        length = int.from_bytes(der[pos : pos + size], "big")
        pos += size
    if pos + length > len(der):
        raise ValueError("truncated DER element")
    return tag, pos, pos + length


def _time(der: bytes, pos: int) -> tuple[float, int]:
    tag, start, end = _der_element(der, pos)
    text = der[start:end].decode("ascii")
    if tag == 0x17:  # UTCTime YYMMDDHHMMSSZ; RFC 5280: YY >= 50 is 19YY
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != 0x18:  # GeneralizedTime YYYYMMDDHHMMSSZ
        raise ValueError(f"unexpected time tag {tag:#x}")
    return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC).timestamp(), end


def _name(der: bytes, start: int, end: int) -> str:
    """A Name (SEQUENCE OF SET OF {type, value}) as ``CN=…, O=…``."""
    parts: list[str] = []
    pos = start
    while pos < end:
        _, set_start, set_end = _der_element(der, pos)  # RelativeDistinguishedName ::= SET
        inner = set_start
        while inner < set_end:
            _, attr_start, attr_end = _der_element(der, inner)  # AttributeTypeAndValue ::= SEQUENCE
            _, oid_start, oid_end = _der_element(der, attr_start)
            label = _NAME_ATTRIBUTES.get(der[oid_start:oid_end])
            if label is not None:
                _, value_start, value_end = _der_element(der, oid_end)
                parts.append(f"{label}={der[value_start:value_end].decode('utf-8', errors='replace')}")
            inner = attr_end
        pos = set_end
    return ", ".join(parts)


def certificate_facts(der: bytes) -> CertificateFacts:
    """Validity, subject and issuer of a DER certificate; ``ValueError`` (or ``IndexError``) when unreadable."""
    _, tbs, _ = _der_element(der, 0)  # Certificate ::= SEQUENCE { tbsCertificate, ... }
    _, pos, _ = _der_element(der, tbs)  # TBSCertificate ::= SEQUENCE {
    tag, _, end = _der_element(der, pos)
    if tag == 0xA0:  # [0] version, absent in v1 certificates
        pos = end
    for _field in ("serialNumber", "signature"):
        _, _, pos = _der_element(der, pos)
    _, issuer_start, issuer_end = _der_element(der, pos)
    _, validity, after_validity = _der_element(der, issuer_end)  # validity ::= SEQUENCE { notBefore, notAfter }
    not_before, pos = _time(der, validity)
    not_after, _ = _time(der, pos)
    _, subject_start, subject_end = _der_element(der, after_validity)
    return CertificateFacts(
        not_before=not_before,
        not_after=not_after,
        subject=_name(der, subject_start, subject_end),
        issuer=_name(der, issuer_start, issuer_end),
    )


def certificate_not_after(der: bytes) -> float:
    """``notAfter`` of a DER X.509 certificate, in seconds since the epoch."""
    return certificate_facts(der).not_after
