-- A filled BSN has 9 digits and passes the elfproef: 9*d1 + 8*d2 + ... + 2*d8 - d9 is a positive multiple of 11.
WITH p AS (
    SELECT agb_code, referentie_nummer, bsn,
           regexp_full_match(bsn, '[0-9]{9}') AS negen_cijfers
    FROM prestaties WHERE bsn IS NOT NULL
), s AS (
    SELECT *, CASE WHEN negen_cijfers THEN
        9 * CAST(bsn[1] AS INTEGER) + 8 * CAST(bsn[2] AS INTEGER) + 7 * CAST(bsn[3] AS INTEGER)
      + 6 * CAST(bsn[4] AS INTEGER) + 5 * CAST(bsn[5] AS INTEGER) + 4 * CAST(bsn[6] AS INTEGER)
      + 3 * CAST(bsn[7] AS INTEGER) + 2 * CAST(bsn[8] AS INTEGER) - CAST(bsn[9] AS INTEGER) END AS som
    FROM p
)
SELECT agb_code, referentie_nummer FROM s
WHERE NOT negen_cijfers OR som % 11 <> 0 OR som <= 0
