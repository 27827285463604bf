"""The language: the op table, the program model, text (parse and print), liveness, simplify.

ops.py holds every op's facts and numpy semantics; program.py the model (cells, instructions,
programs); syntax.py / spelling.py / parse.py read text, printer.py writes it; rows.py is a
program as arrays, liveness.py which instructions matter, simplify.py the readable program.
"""
