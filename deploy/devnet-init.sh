#!/bin/sh
# Prepares deploy/devnet/ for deploy/docker-compose.yml: three validator keys under one
# passphrase, one genesis naming the three validators, and the environment files the
# compose services read. Run it once before `docker compose up`; it refuses to touch an
# existing devnet unless given --force (which deletes the devnet's keys and chains).
#
# Usage: deploy/devnet-init.sh [--force]
#
# The blyan-node it runs, first found of:
#   $BLYAN_NODE                      a blyan-node executable
#   the blyan-node:dev image         when a Docker engine answers (docker build first)
#   target/x86_64-unknown-linux-gnu/release/blyan-node, target/release/blyan-node
#
# It writes (deploy/.gitignore keeps them out of git):
#   devnet/nodeN/node.key   node N's encrypted key (its /data volume)
#   devnet/genesis.json     chain id 1337, 2 s slots, the three validators in slot order,
#                           1 000 000 000 000 to each validator's address
#   devnet/devnet.env       BLYAN_KEY_PASSPHRASE (mode 0600): dev secrets only
#   devnet/nodeN.env        NODE_ID and BLYAN_BOOTSTRAP__NODES (the two other nodes)
#   .env                    DEVNET_UID/DEVNET_GID: the containers run as you, so they
#                           can write the bind-mounted devnet/nodeN directories
set -eu

cd "$(dirname "$0")"
deploy_dir="$PWD"
out="$deploy_dir/devnet"
image="${BLYAN_IMAGE:-blyan-node:dev}"
# Keep in step with the ipv4_address entries of docker-compose.yml.
subnet_prefix=172.28.0
p2p_port=30333

if [ -e "$out" ]; then
    if [ "${1:-}" != "--force" ]; then
        echo "devnet-init.sh: $out exists; run with --force to delete it and start over" >&2
        exit 1
    fi
    rm -rf "$out"
fi

# How to run blyan-node, and the devnet directory as that blyan-node sees it.
if [ -n "${BLYAN_NODE:-}" ]; then
    runner=binary
    node_bin="$BLYAN_NODE"
    dir="$out"
elif command -v docker >/dev/null 2>&1 && docker image inspect "$image" >/dev/null 2>&1; then
    runner=docker
    dir=/devnet
else
    runner=binary
    node_bin=""
    for candidate in ../target/x86_64-unknown-linux-gnu/release/blyan-node ../target/release/blyan-node; do
        if [ -x "$candidate" ]; then
            node_bin="$candidate"
            break
        fi
    done
    if [ -z "$node_bin" ]; then
        echo "devnet-init.sh: no blyan-node found: build the image (docker build -f deploy/Dockerfile -t $image .)," >&2
        echo "  or the binary (deploy/build-static.sh), or set BLYAN_NODE" >&2
        exit 1
    fi
    dir="$out"
fi

blyan() {
    if [ "$runner" = docker ]; then
        docker run --rm --user "$(id -u):$(id -g)" -v "$out:/devnet" \
            -e BLYAN_KEY_PASSPHRASE "$image" "$@"
    else
        "$node_bin" "$@"
    fi
}

umask 077
mkdir -p "$out"
BLYAN_KEY_PASSPHRASE="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
export BLYAN_KEY_PASSPHRASE
printf 'BLYAN_KEY_PASSPHRASE=%s\n' "$BLYAN_KEY_PASSPHRASE" >"$out/devnet.env"

validators=""
balances=""
for n in 1 2 3; do
    mkdir -p "$out/node$n"
    blyan keygen --key-file "$dir/node$n/node.key" >"$out/node$n/identity.txt"
    public_key="$(sed -n 's/^public key  *//p' "$out/node$n/identity.txt")"
    peer_id="$(sed -n 's/^peer id  *//p' "$out/node$n/identity.txt")"
    address="$(sed -n 's/^address  *//p' "$out/node$n/identity.txt")"
    if [ -z "$public_key" ] || [ -z "$peer_id" ] || [ -z "$address" ]; then
        echo "devnet-init.sh: could not read node$n's identity from keygen's output:" >&2
        cat "$out/node$n/identity.txt" >&2
        exit 1
    fi
    validators="$validators --validator $public_key"
    balances="$balances --balance $address=1000000000000"
    eval "peer_$n=$peer_id"
done

# shellcheck disable=SC2086 # word splitting of the flag lists is intended
blyan init $validators $balances --chain-id 1337 --slot-duration-ms 2000 \
    --out "$dir/genesis.json"

for n in 1 2 3; do
    entries=""
    for m in 1 2 3; do
        [ "$m" = "$n" ] && continue
        eval "peer=\$peer_$m"
        entries="${entries:+$entries,}$peer@$subnet_prefix.1$m:$p2p_port"
    done
    {
        echo "NODE_ID=node$n"
        echo "BLYAN_BOOTSTRAP__NODES=[$entries]"
    } >"$out/node$n.env"
done

printf 'DEVNET_UID=%s\nDEVNET_GID=%s\n' "$(id -u)" "$(id -g)" >"$deploy_dir/.env"

echo "devnet ready in $out:"
for n in 1 2 3; do
    eval "echo \"  node$n  peer id \$peer_$n  ($subnet_prefix.1$n)\""
done
echo "start it: docker compose -f deploy/docker-compose.yml up -d"
