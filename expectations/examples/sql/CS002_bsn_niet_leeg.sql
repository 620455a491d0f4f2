-- A prestatie names its client's BSN (CS002).
SELECT agb_code, referentie_nummer FROM prestaties WHERE bsn IS NULL
