"""Only placeholders and ops (the third convention): compile with --output NAME."""

import graphc as gc

a = gc.placeholder(gc.float32, (None,), name="a")
b = gc.placeholder(gc.float32, (None,), name="b")
unused = gc.placeholder(gc.float32, (2,), name="unused")
total = gc.add(a * 2.0, b, name="total")
diff = gc.subtract(a, b, name="diff")
