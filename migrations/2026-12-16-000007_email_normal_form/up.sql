-- E-mail addresses in their normal form (issue 15). The domain now stores and looks up an
-- address as NFKC, lower case, NFKC again (`Email::parse`), and refuses invisible
-- characters (Unicode's default-ignorable code points: zero-width spaces and joiners, soft
-- hyphens, direction controls, variation selectors, tags). Until now full-width letters,
-- decomposed accents and zero-width spaces made accounts whose addresses look alike.
--
-- `email_normal_form` is that rule in SQL: what an address reads as once normalised, with
-- the invisible characters dropped (they are refused at sign-in now, so the address without
-- them is the one its owner can still type).
CREATE FUNCTION email_normal_form(email text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$
        SELECT normalize(lower(normalize(regexp_replace(email,
            U&'[\00AD\034F\061C\115F-\1160\17B4-\17B5\180B-\180F\200B-\200F\202A-\202E\2060-\206F\3164\FE00-\FE0F\FEFF\FFA0\FFF0-\FFF8\+01BCA0-\+01BCA3\+01D173-\+01D17A\+0E0000-\+0E0FFF]',
            '', 'g'), NFKC)), NFKC)
    $$;

-- Accounts whose addresses read the same once normalised: one row per normal form shared
-- by more than one account, oldest account first. They are NOT merged (which account is the
-- mailbox's owner is a person's call, and merging would hand one person's sessions and
-- password to another); `sessiond migrate` lists them after migrating, until an operator
-- resolves them (renames or deletes all but one). Until then the accounts keep their stored
-- addresses; a sign-in finds only the one, if any, already stored in the normal form.
CREATE VIEW email_normalisation_collisions AS
    SELECT email_normal_form(email) AS normal_form,
           array_agg(id ORDER BY created_at, id) AS user_ids,
           array_agg(email ORDER BY created_at, id) AS emails
    FROM users
    GROUP BY email_normal_form(email)
    HAVING count(*) > 1;

-- Every other address is rewritten to its normal form, so that sign-in, which looks up the
-- normal form, still finds it. Skipped: addresses whose normal form another account shares
-- (the view above reports them) or already holds as its stored address.
UPDATE users AS u
SET email = n.normal_form,
    updated_at = now()
FROM (SELECT id, email_normal_form(email) AS normal_form FROM users) AS n
WHERE u.id = n.id
  AND u.email <> n.normal_form
  AND n.normal_form = lower(n.normal_form)
  AND NOT EXISTS (
      SELECT 1 FROM users AS other
      WHERE other.id <> u.id
        AND (other.email = n.normal_form OR email_normal_form(other.email) = n.normal_form)
  );
