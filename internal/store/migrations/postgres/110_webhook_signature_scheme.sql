-- An endpoint's signature scheme (CONTRACT section 8): 'v1' signs with the HMAC-SHA256 of a
-- whsec_ secret, 'v1a' with the Ed25519 signature of a whsk_ signing key. The key lives in the
-- same columns as a v1 secret (secret, previous_secret), sealed alike with SECRETS_KEY, and
-- rotates alike; the scheme only says which kind the next rotation makes. It changes with the
-- secret, in one statement (store.Webhooks.RotateSecret), so the two always agree.
ALTER TABLE webhooks ADD COLUMN signature_scheme TEXT NOT NULL DEFAULT 'v1' CHECK (signature_scheme IN ('v1', 'v1a'));

-- How deliveries are signed is what the webhooks version covers (migration 060): the scheme
-- joins the columns that move it.
DROP TRIGGER webhooks_version_update ON webhooks;
CREATE TRIGGER webhooks_version_update AFTER UPDATE OF url, events, secret, previous_secret, previous_secret_until, disabled, signature_scheme ON webhooks FOR EACH ROW EXECUTE FUNCTION webhooks_version_bump();
