-- Care does not start before the toewijzing it starts (TR019).
SELECT gemeente_code, agb_code, toewijzing_nummer, begindatum FROM zorgstarts
WHERE begindatum < toewijzing_ingangsdatum
