# hash
// slash
/* block
   comment */ a = "q\" b\\ s\/ \n\t\r\b\f \u00e9\uD83D\uDE00 é"
b = [1, -2.5e3, 0, true, false, [], {}, { k: "v", "q k" = [1,] },]
"quoted" = 1, dotted.name-x = 2
