/* Open MPI's non-blocking all-reduce (libnbc), schedule and progress rule, for the cluster
 * simulation (mpi/sim/).
 *
 * scripts/scale_sim compiles mpi/gradsync.c unchanged with smpicc and
 *   -DMPI_Iallreduce=nbc_iallreduce -DMPI_Testall=nbc_testall -DMPI_Waitall=nbc_waitall
 * because SMPI 3.32's own MPI_Iallreduce sends every rank's whole buffer to every rank (p^2 full
 * messages: not what Open MPI does, and not simulable at 1024 ranks) and crashes above its
 * detached-send threshold. This file follows Open MPI 4.1's ompi/mca/coll/libnbc/nbc_iallreduce.c:
 *   algorithm  p < 4, or under 64 KiB, or MPI_IN_PLACE: BINOMIAL (a binomial-tree reduce to rank 0,
 *              each round the whole buffer, then a binomial broadcast of the whole buffer);
 *              otherwise, count >= p and p a power of two: REDSCAT_ALLGATHER (recursive halving
 *              reduce-scatter, recursive doubling all-gather: 2 log2 p rounds of n/2, n/4, ... ).
 *              (libnbc's ring for the remaining cases is not modelled: binomial stands in.)
 *   progress   one round per progress call: a round starts only when the previous round's
 *              messages are complete AND the rank calls into MPI (MPI_Testall in gradsync_ready,
 *              once per backward block, or the final MPI_Waitall), as libnbc's NBC_Progress does
 *              without an asynchronous progress thread.
 * The payload is not summed (the simulation needs the time only): each received piece that libnbc
 * would reduce charges pieces x reduce_per_float seconds of compute (nbc_set_reduce_cost). Every
 * message is sent from and received into one scratch buffer from SMPI_SHARED_MALLOC, which SMPI does
 * not copy: the caller's buffer only names the sizes (scale_sim's --fold makes it smaller than the
 * bytes it stands for).
 */
#include "nbc_allreduce.h"

#include <smpi/smpi.h>
#include <stdint.h>
#include <stdlib.h>

enum { SLOTS = 4096, ROUNDS_MAX = 64, SENDS_MAX = 24, TAG_BASE = 17000, TAG_SPAN = 8192 };

struct round {
    int sends, recv_peer; /* recv_peer -1: nothing received */
    int send_peer[SENDS_MAX];
    long long send_bytes[SENDS_MAX];
    long long recv_bytes;
    long long reduce_elems; /* reduced after the round's receive */
};

struct handle {
    int used, done, tag, current, rounds, posted;
    MPI_Comm comm;
    struct round round[ROUNDS_MAX];
    MPI_Request rq[SENDS_MAX + 1];
    int nrq;
};

static struct handle slots[SLOTS];
static char *scratch;
static long long scratch_bytes;
static double reduce_per_float;
static long long bytes_sent, messages_sent;
static int sequence, last_algorithm;

void nbc_set_reduce_cost(double seconds_per_element) { reduce_per_float = seconds_per_element; }
long long nbc_bytes_sent(void) { return bytes_sent; }
long long nbc_messages_sent(void) { return messages_sent; }
int nbc_last_algorithm(void) { return last_algorithm; }

static struct round *new_round(struct handle *h)
{
    if (h->rounds == ROUNDS_MAX) return NULL;
    struct round *r = &h->round[h->rounds++];
    r->sends = 0, r->recv_peer = -1, r->recv_bytes = 0, r->reduce_elems = 0;
    return r;
}

static void add_send(struct round *r, int peer, long long bytes)
{
    if (r->sends == SENDS_MAX) return;
    r->send_peer[r->sends] = peer, r->send_bytes[r->sends++] = bytes;
}

/* libnbc's allred_sched_diss: binomial reduce to 0, then binomial broadcast, whole buffer. */
static void schedule_binomial(struct handle *h, int me, int p, long long count, int elem)
{
    long long bytes = count * elem;
    int maxr = 0;
    while ((1 << maxr) < p) maxr++;
    for (int r = 1; r <= maxr; r++) {
        if (me % (1 << r) == 0) {
            int peer = me + (1 << (r - 1));
            if (peer < p) {
                struct round *x = new_round(h);
                x->recv_peer = peer, x->recv_bytes = bytes, x->reduce_elems = count;
            }
        } else {
            add_send(new_round(h), me - (1 << (r - 1)), bytes);
            break;
        }
    }
    int low = me == 0 ? maxr : __builtin_ctz((unsigned)me); /* children below 2^low */
    if (me != 0) {
        struct round *x = new_round(h);
        x->recv_peer = me - (1 << low), x->recv_bytes = bytes;
    }
    struct round *x = NULL;
    for (int k = low - 1; k >= 0; k--)
        if (me + (1 << k) < p) {
            if (!x) x = new_round(h);
            add_send(x, me + (1 << k), bytes);
        }
}

/* Rabenseifner: recursive halving reduce-scatter, recursive doubling all-gather (p a power of 2). */
static void schedule_redscat_allgather(struct handle *h, int me, int p, long long count, int elem)
{
    long long lo = 0, n = count; /* this rank's segment [lo, lo + n) */
    long long seg_lo[32], seg_n[32];
    int steps = 0;
    for (int mask = p >> 1; mask >= 1; mask >>= 1, steps++) {
        int peer = me ^ mask;
        long long half = n / 2, keep_lo = (me & mask) ? lo + half : lo, keep_n = (me & mask) ? n - half : half;
        long long give_n = n - keep_n; /* the other half goes to the peer */
        struct round *x = new_round(h);
        add_send(x, peer, give_n * elem);
        x->recv_peer = peer, x->recv_bytes = keep_n * elem, x->reduce_elems = keep_n;
        seg_lo[steps] = lo, seg_n[steps] = n;
        lo = keep_lo, n = keep_n;
    }
    for (int s = steps - 1, mask = 1; s >= 0; s--, mask <<= 1) {
        int peer = me ^ mask;
        struct round *x = new_round(h);
        add_send(x, peer, n * elem);
        x->recv_peer = peer, x->recv_bytes = (seg_n[s] - n) * elem;
        lo = seg_lo[s], n = seg_n[s];
    }
}

static int post_round(struct handle *h)
{
    const struct round *r = &h->round[h->current];
    long long need = r->recv_bytes > 0 ? r->recv_bytes : 1;
    for (int s = 0; s < r->sends; s++)
        if (r->send_bytes[s] > need) need = r->send_bytes[s];
    if (need > scratch_bytes) {
        if (scratch) SMPI_SHARED_FREE(scratch);
        scratch = SMPI_SHARED_MALLOC((size_t)need);
        scratch_bytes = need;
    }
    h->nrq = 0;
    int rc = MPI_SUCCESS;
    if (r->recv_peer >= 0)
        rc = MPI_Irecv(scratch, (int)r->recv_bytes, MPI_BYTE, r->recv_peer, h->tag, h->comm, &h->rq[h->nrq++]);
    for (int s = 0; s < r->sends && rc == MPI_SUCCESS; s++) {
        rc = MPI_Isend(scratch, (int)r->send_bytes[s], MPI_BYTE, r->send_peer[s], h->tag, h->comm,
                       &h->rq[h->nrq++]);
        bytes_sent += r->send_bytes[s];
        messages_sent++;
    }
    h->posted = 1;
    return rc;
}

/* One libnbc progress step: if the current round is complete, charge its reduction and start the
 * next round. */
static int progress(struct handle *h)
{
    if (h->done) return MPI_SUCCESS;
    int complete = 1;
    int rc = h->nrq ? MPI_Testall(h->nrq, h->rq, &complete, MPI_STATUSES_IGNORE) : MPI_SUCCESS;
    if (rc != MPI_SUCCESS || !complete) return rc;
    if (h->round[h->current].reduce_elems > 0 && reduce_per_float > 0)
        smpi_execute((double)h->round[h->current].reduce_elems * reduce_per_float);
    h->nrq = 0;
    if (++h->current >= h->rounds) {
        h->done = 1;
        return MPI_SUCCESS;
    }
    return post_round(h);
}

static struct handle *handle_of(MPI_Request q) { return &slots[(intptr_t)q - 1]; }

int nbc_iallreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype type, MPI_Op op, MPI_Comm comm,
                   MPI_Request *request)
{
    (void)op; /* the values are not computed */
    int p, me, elem;
    MPI_Comm_size(comm, &p);
    MPI_Comm_rank(comm, &me);
    MPI_Type_size(type, &elem);
    int k = 0;
    while (k < SLOTS && slots[k].used) k++;
    if (k == SLOTS) return MPI_ERR_INTERN;
    struct handle *h = &slots[k];
    h->used = 1, h->done = 0, h->current = 0, h->rounds = 0, h->nrq = 0, h->posted = 0;
    (void)recvbuf;
    h->comm = comm, h->tag = TAG_BASE + sequence++ % TAG_SPAN;
    *request = (MPI_Request)(intptr_t)(k + 1);
    int inplace = sendbuf == MPI_IN_PLACE, pof2 = (p & (p - 1)) == 0;
    int binomial = p < 4 || (long long)count * elem < 65536 || inplace || !pof2 || count < p;
    last_algorithm = binomial ? NBC_BINOMIAL : NBC_REDSCAT_ALLGATHER;
    if (p == 1) {
        h->done = 1;
        return MPI_SUCCESS;
    }
    if (binomial) schedule_binomial(h, me, p, count, elem);
    else schedule_redscat_allgather(h, me, p, count, elem);
    if (h->rounds == 0) {
        h->done = 1;
        return MPI_SUCCESS;
    }
    return post_round(h);
}

int nbc_testall(int n, MPI_Request *requests, int *flag, MPI_Status *statuses)
{
    (void)statuses;
    int all = 1;
    for (int i = 0; i < n; i++) {
        struct handle *h = handle_of(requests[i]);
        int rc = progress(h);
        if (rc != MPI_SUCCESS) return rc;
        all = all && h->done;
    }
    *flag = all;
    return MPI_SUCCESS;
}

/* Waits like libnbc under a blocking MPI_Waitall: every outstanding all-reduce advances as soon as
 * its round completes; then the handles are released. */
int nbc_waitall(int n, MPI_Request *requests, MPI_Status *statuses)
{
    (void)statuses;
    MPI_Request *pending = malloc(sizeof *pending * (size_t)(n * (SENDS_MAX + 1) + 1));
    MPI_Request **owner = malloc(sizeof *owner * (size_t)(n * (SENDS_MAX + 1) + 1)); /* pending[j] lives */
    int rc = pending && owner ? MPI_SUCCESS : MPI_ERR_NO_MEM;
    while (rc == MPI_SUCCESS) {
        int active = 0;
        for (int i = 0; i < n && rc == MPI_SUCCESS; i++) {
            struct handle *h = handle_of(requests[i]);
            int before = h->current;
            rc = progress(h);
            if (rc == MPI_SUCCESS && !h->done && h->current != before) i--; /* maybe done at once */
            else
                for (int k = 0; k < h->nrq && !h->done; k++)
                    if (h->rq[k] != MPI_REQUEST_NULL) owner[active] = &h->rq[k], pending[active++] = h->rq[k];
        }
        if (rc != MPI_SUCCESS || active == 0) break;
        int index = MPI_UNDEFINED;
        rc = MPI_Waitany(active, pending, &index, MPI_STATUS_IGNORE);
        if (index != MPI_UNDEFINED) *owner[index] = MPI_REQUEST_NULL; /* completed and freed */
    }
    for (int i = 0; i < n; i++) handle_of(requests[i])->used = 0;
    free(pending), free(owner);
    return rc;
}
