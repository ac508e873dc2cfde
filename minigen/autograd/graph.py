"""Graph export for teaching: ``to_dot(tensor)`` returns Graphviz DOT text.

Boxes are ops (``MulBackward``...), ellipses are leaf tensors (with their shape
and name, if set), edges run from inputs to the op that used them.
Render with ``dot -Tpng graph.dot -o graph.png`` if Graphviz is installed.
"""
from __future__ import annotations

from .function import Context


def to_dot(tensor, name: str = "graph") -> str:
    """Graphviz DOT text of the graph that computed ``tensor`` (a Tensor; ``name``: the digraph's name)."""
    from ..argcheck import check_tensor
    from ..errors import InvalidArgumentError

    check_tensor(tensor, "to_dot", "tensor")
    if not isinstance(name, str) or not name.isidentifier():
        raise InvalidArgumentError(f"to_dot: name must be an identifier string, got {name!r}"[:200])
    root = tensor._ctx if tensor._ctx is not None else tensor
    lines = [f"digraph {name} {{", "  rankdir=BT;", '  node [fontname="Helvetica", fontsize=10];']
    seen, stack = set(), [root]
    out_id = f"out{id(tensor)}"
    lines.append(f'  {out_id} [label="output\\n{tuple(tensor.shape)}", shape=doubleoctagon];')
    lines.append(f"  n{id(root)} -> {out_id};")
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if type(n) is Context:
            label = n.name
            lines.append(f'  n{id(n)} [label="{label}", shape=box, style=filled, fillcolor="#dde8ff"];')
            for p in n.next_nodes or ():
                if p is None:
                    continue
                lines.append(f"  n{id(p)} -> n{id(n)};")
                stack.append(p)
        else:
            nm = (n.name + "\\n") if getattr(n, "name", None) else ""
            lines.append(f'  n{id(n)} [label="{nm}{tuple(n.shape)} {n.dtype}", shape=ellipse, '
                         f'style=filled, fillcolor="#e8ffe0"];')
    lines.append("}")
    return "\n".join(lines) + "\n"
