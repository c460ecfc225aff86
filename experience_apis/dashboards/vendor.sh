#!/usr/bin/env bash
# Rebuilds static/vendor/ from the npm registry: the Chart.js UMD bundle the dashboard page draws with, and its
# licence. Pinned by version and by the registry's sha512 integrity, so the same files come out every time.
# The page never loads anything from a CDN; these files are committed and served by the experience tier.
# Usage: experience_apis/dashboards/vendor.sh   (needs npm and node; no other tool)
set -euo pipefail
VERSION=4.6.2
INTEGRITY=sha512-xachB+pPHjp0syJi7llUBA1w3kMYl6NF3o7eVrvjnWCT+IB2zMaF2pX5UYDiwbbfsioFEIRnAjreNOMsGj5TIA==
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack "chart.js@$VERSION" --silent >/dev/null)
tarball="$work/chart.js-$VERSION.tgz"
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$actual" != "$INTEGRITY" ]; then
  echo "chart.js $VERSION: integrity $actual is not the pinned $INTEGRITY" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work"
license="$(node -p "require('$work/package/package.json').license")"
[ "$license" = "MIT" ] || { echo "chart.js $VERSION: licence is $license, not MIT" >&2; exit 1; }
mkdir -p "$here/static/vendor"
# The source map is not shipped, so its reference goes too (a browser would ask for a file that is not there).
grep -v '^//# sourceMappingURL=' "$work/package/dist/chart.umd.min.js" > "$here/static/vendor/chart.umd.min.js"
cp "$work/package/LICENSE.md" "$here/static/vendor/chart.js-LICENSE.md"
echo "chart.js $VERSION ($license) -> $here/static/vendor/"
