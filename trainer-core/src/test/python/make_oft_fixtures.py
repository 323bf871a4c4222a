#!/usr/bin/env python3
"""Independent reference for OftTest: PEFT 0.18's OFT rotation re-created in numpy.

From PEFT v0.18.1 (the version LLaMA-Factory requires, Apache-2.0), src/peft/tuners/oft/layer.py:

  * OFTRotationModule._pytorch_skew_symmetric  Q = U - U^T, U[rows, cols] = weight with
                                               rows, cols = torch.triu_indices(b, b, 1)
  * OFTRotationModule._cayley_batch            use_cayley_neumann: the truncated series, term by
                                               term as PEFT adds them; otherwise
                                               torch.linalg.solve(I + Q, I - Q, left=False),
                                               i.e. R (I + Q) = I - Q
  * OFTRotationModule.forward                  x (..., k * b) -> (..., k, b), einsum
                                               "...rk,rkc->...rc" with R (k, b, b)
  * Linear.merge                               W' = (blockdiag(R) @ W^T)^T

Writes trainer-core/src/test/resources/oft/rotation.json: for each case the parameter
(k, b(b-1)/2), R (k, b, b), an input x (2, k b) and x rotated, a weight W (3, k b) and W merged.
Regenerate from the repository root: python3 trainer-core/src/test/python/make_oft_fixtures.py
Needs numpy only.
"""
import json
import os

import numpy as np


def triu_indices(b):
    # torch.triu_indices(b, b, 1): row-major over the strict upper triangle
    rows, cols = [], []
    for i in range(b):
        for j in range(i + 1, b):
            rows.append(i)
            cols.append(j)
    return np.array(rows), np.array(cols)


def skew(weight, b):
    k = weight.shape[0]
    rows, cols = triu_indices(b)
    m = np.zeros((k, b, b))
    m[:, rows, cols] = weight
    return m - np.transpose(m, (0, 2, 1))


def cayley(weight, b, use_neumann, terms):
    q = skew(weight, b)
    k = weight.shape[0]
    if use_neumann:
        r = np.repeat(np.eye(b)[None], k, axis=0)
        if terms > 1:
            r = r + 2.0 * q
            if terms > 2:
                q2 = q @ q
                r = r + 2.0 * q2
                power = q2
                for _ in range(3, terms - 1):
                    power = power @ q
                    r = r + 2.0 * power
                power = power @ q
                r = r + power
        return r
    eye = np.eye(b)
    # X (I + Q) = I - Q  =>  X = (I - Q) (I + Q)^-1
    return np.stack([(eye - q[i]) @ np.linalg.inv(eye + q[i]) for i in range(k)])


def rotate(x, r):
    k, b, _ = r.shape
    xs = x.reshape(x.shape[0], k, b)
    return np.einsum("nrk,rkc->nrc", xs, r).reshape(x.shape)


def block_diag(r):
    k, b, _ = r.shape
    out = np.zeros((k * b, k * b))
    for i in range(k):
        out[i * b:(i + 1) * b, i * b:(i + 1) * b] = r[i]
    return out


def case(name, rng, k, b, use_neumann, terms, scale):
    n = b * (b - 1) // 2
    weight = rng.normal(0, scale, size=(k, n))
    r = cayley(weight, b, use_neumann, terms)
    x = rng.normal(0, 1, size=(2, k * b))
    w = rng.normal(0, 0.5, size=(3, k * b))
    merged = (block_diag(r) @ w.T).T
    return {"name": name, "blocks": k, "block_size": b, "use_cayley_neumann": use_neumann,
            "num_cayley_neumann_terms": terms, "weight": weight.tolist(), "R": r.tolist(), "x": x.tolist(),
            "rotated": rotate(x, r).tolist(), "W": w.tolist(), "merged": merged.tolist()}


def main():
    rng = np.random.default_rng(20261201)
    cases = [case("neumann 5 terms", rng, 3, 4, True, 5, 0.1),
             case("neumann 3 terms", rng, 2, 5, True, 3, 0.1),
             case("neumann 6 terms", rng, 2, 4, True, 6, 0.2),
             case("exact cayley", rng, 2, 4, False, 5, 0.3)]
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../resources/oft/rotation.json")
    with open(out, "w") as f:
        json.dump({"cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
