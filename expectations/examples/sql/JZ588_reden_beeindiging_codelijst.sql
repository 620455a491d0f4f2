-- The reden beeindiging of a stop is a code of iJw code list JZ588.
SELECT * FROM zorgstops
WHERE reden_beeindiging NOT IN ('02', '20', '31', '32', '33', '34', '35', '36', '37', '38', '39')
