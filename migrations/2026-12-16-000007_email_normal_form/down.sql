-- Addresses rewritten to their normal form stay so: they are valid addresses either way.
DROP VIEW email_normalisation_collisions;
DROP FUNCTION email_normal_form(text);
