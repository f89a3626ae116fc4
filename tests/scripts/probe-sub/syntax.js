// A module with a syntax error.
var = ;
