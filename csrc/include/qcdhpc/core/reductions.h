// Fixed-order sums: the one summation order every backend uses, so that a sum
// (an energy, a norm, an observable) has the same bits on the CPU, in a CPU
// lane block and on the GPU.
//
//   ordered_sum8(n, n_interior, interior, term)   one row: QCD_HD math
//   row_chain_sums(B, nrows, rowsum, out, row)    per-chain totals: two stages
//
// Floating-point addition is not associative, so the order is part of the
// definition of the result: a vectorising CPU compiler and a GPU thread may
// only reorder what we wrote as independent.
#pragma once

#include "config.h"
#include "parallel_for.h"

namespace qcdhpc {

// sum over x = 0 .. n-1 of term(x), in double, in the fixed order: eight
// interleaved partial sums, x added to partial sum x mod 8 in increasing x,
// combined as ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)).
// `interior(x)` is used for the groups of eight that lie wholly below
// n_interior and `term(x)` for every other x; both must compute the same value
// wherever both are valid.  The split only lets a caller drop index wrapping
// (periodic neighbours) from the part that a CPU compiler vectorises: the order
// of additions, hence the result, does not depend on n_interior.
template <class Interior, class Term>
QCD_INLINE double ordered_sum8(int64_t n, int64_t n_interior, Interior interior, Term term) {
  constexpr int kLanes = 8;
  double acc[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t x = 0;
  for (; x + kLanes <= n_interior && x + kLanes <= n; x += kLanes)
    for (int k = 0; k < kLanes; ++k) acc[k] += interior(x + k);
  for (; x < n; ++x) acc[x % kLanes] += term(x);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// The same order with one function for every x.
template <class Term>
QCD_INLINE double ordered_sum8(int64_t n, Term term) {
  return ordered_sum8(n, n, term, term);
}

// Per-chain totals of B chains of nrows rows each, in two deterministic stages:
// (1) rowsum[b * nrows + r] = row(b, r) for every (chain, row), in parallel --
//     row() fixes the order inside a row, normally with ordered_sum8;
// (2) out[b] = sum of chain b's rows in increasing r, starting from 0.0.
// rowsum has B * nrows entries, out B, both in backend memory.  row is a
// QCD_LAMBDA (it runs on the device in CUDA builds).
template <class Row>
inline void row_chain_sums(int64_t B, int64_t nrows, double* rowsum, double* out, Row row) {
  parallel_for(B * nrows, QCD_LAMBDA(int64_t i) {
    const int64_t b = i / nrows;
    rowsum[i] = row(b, i - b * nrows);
  });
  parallel_for(B, QCD_LAMBDA(int64_t b) {
    double s = 0.0;
    for (int64_t r = 0; r < nrows; ++r) s += rowsum[b * nrows + r];
    out[b] = s;
  });
}

}  // namespace qcdhpc
