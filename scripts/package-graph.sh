#!/usr/bin/env bash
# Draws golora's package graph into docs/img/packages.svg: one box per package,
# an arrow from each package to the golora packages it imports (production
# files only, no tests), reduced to its transitive reduction (an arrow implied
# by a longer path is left out), and Gorgonia as the one outside module shown,
# to make plain which packages touch it. Needs Go and Graphviz (dot, tred).
#
#   scripts/package-graph.sh            regenerate docs/img/packages.svg
#   scripts/package-graph.sh --dot      print the DOT source instead
set -euo pipefail
cd "$(dirname "$0")/.."
mod=$(go list -m)
dotsrc() {
  echo 'digraph packages {'
  echo '  rankdir=BT; nodesep=0.25; ranksep=0.45;'
  echo '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", fontname="Helvetica", fontsize=11];'
  echo '  edge [color="#555555", arrowsize=0.6];'
  echo '  "gorgonia.org/gorgonia" [shape=ellipse, fillcolor="#fde9d9"];'
  go list -f '{{.ImportPath}}{{range .Imports}} {{.}}{{end}}' ./... | while read -r pkg deps; do
    short=${pkg#"$mod"/}
    case "$short" in internal/*) fill="#f2f2f2" ;; cmd/*|tools/*) fill="#e8f5e9" ;; *) fill="#eef3fb" ;; esac
    echo "  \"$short\" [fillcolor=\"$fill\"];"
    for d in $deps; do
      case "$d" in
        "$mod"/*) echo "  \"$short\" -> \"${d#"$mod"/}\";" ;;
        gorgonia.org/gorgonia) echo "  \"$short\" -> \"gorgonia.org/gorgonia\";" ;;
      esac
    done
  done
  echo '}'
}
if [ "${1:-}" = "--dot" ]; then
  dotsrc
  exit 0
fi
mkdir -p docs/img
dotsrc | tred | dot -Tsvg -o docs/img/packages.svg.tmp
mv docs/img/packages.svg.tmp docs/img/packages.svg
echo "wrote docs/img/packages.svg"
