-- IngediendBedrag = GeleverdVolume x ProductTarief (TR346; the fault catalogue files it under CD087).
SELECT agb_code, referentie_nummer FROM prestaties
WHERE ingediend_bedrag <> geleverd_volume * product_tarief
