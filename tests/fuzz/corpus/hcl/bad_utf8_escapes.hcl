a = "À¯ \ud800 \u0000"
/* open