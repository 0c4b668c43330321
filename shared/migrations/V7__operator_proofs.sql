-- Operator identity proofs are single-use: a captured invocation replayed
-- within STS's 15-minute window is refused (shared::ops::Verifier). Rows older
-- than a day are deleted when the next proof is spent.
CREATE TABLE operator_proofs (
    proof_sha256 bytea PRIMARY KEY CHECK (octet_length(proof_sha256) = 32),
    caller text NOT NULL CHECK (length(caller) BETWEEN 1 AND 2048),
    used_at timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT, DELETE ON operator_proofs TO gallery_app;
