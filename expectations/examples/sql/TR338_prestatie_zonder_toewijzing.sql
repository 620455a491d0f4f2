-- table: prestaties
-- A prestatie claims against an existing toewijzing (TR338).
SELECT p.agb_code, p.referentie_nummer FROM prestaties p
WHERE p.toewijzing_nummer NOT IN (SELECT toewijzing_nummer FROM toewijzingen WHERE toewijzing_nummer IS NOT NULL)
