//! Union-find over identifier nodes, with each set's members threaded on a ring so that a
//! person's identifiers can be listed (and a split recomputed) in time proportional to its size.
//!
//! Not petgraph's `UnionFind`: it cannot list a set's members (a merge report, `identifiers`,
//! a split all need them), nor reset one set while the others stand, and the graph chooses
//! roots itself so that each root carries its person's OneID. Path search over the evidence is
//! petgraph's (see `explain`).

/// Disjoint sets of `u32` nodes: union by size, path halving, member rings.
#[derive(Debug, Clone, Default)]
pub(crate) struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
    /// `next[n]`: the next member of `n`'s set; following it from any member visits the set once.
    next: Vec<u32>,
}

impl UnionFind {
    /// Add a singleton set; returns its node.
    pub(crate) fn push(&mut self) -> u32 {
        let n = u32::try_from(self.parent.len()).expect("fewer than 2^32 identifiers");
        self.parent.push(n);
        self.size.push(1);
        self.next.push(n);
        n
    }

    /// Room for `n` more nodes.
    pub(crate) fn reserve(&mut self, n: usize) {
        self.parent.reserve(n);
        self.size.reserve(n);
        self.next.reserve(n);
    }

    /// The root of `n`'s set, without shortening paths (for `&self` queries).
    pub(crate) fn find(&self, mut n: u32) -> u32 {
        while self.parent[n as usize] != n {
            n = self.parent[n as usize];
        }
        n
    }

    /// The root of `n`'s set, halving the path on the way.
    pub(crate) fn find_mut(&mut self, mut n: u32) -> u32 {
        while self.parent[n as usize] != n {
            let gp = self.parent[self.parent[n as usize] as usize];
            self.parent[n as usize] = gp;
            n = gp;
        }
        n
    }

    /// Join the sets of roots `a` and `b`; returns the new root (the larger set's).
    pub(crate) fn union_roots(&mut self, a: u32, b: u32) -> u32 {
        debug_assert!(a != b && self.parent[a as usize] == a && self.parent[b as usize] == b);
        let (big, small) = if self.size[a as usize] >= self.size[b as usize] {
            (a, b)
        } else {
            (b, a)
        };
        self.parent[small as usize] = big;
        self.size[big as usize] += self.size[small as usize];
        // Splicing two rings is a swap of one successor each.
        self.next.swap(big as usize, small as usize);
        big
    }

    /// The members of the set holding `n`, starting at `n`.
    pub(crate) fn members(&self, n: u32) -> Vec<u32> {
        let mut out = vec![n];
        let mut cur = self.next[n as usize];
        while cur != n {
            out.push(cur);
            cur = self.next[cur as usize];
        }
        out
    }

    /// Make every node of `nodes` a singleton again (the nodes must be a whole set).
    pub(crate) fn reset(&mut self, nodes: &[u32]) {
        for &n in nodes {
            self.parent[n as usize] = n;
            self.size[n as usize] = 1;
            self.next[n as usize] = n;
        }
    }

    /// Number of nodes.
    pub(crate) fn len(&self) -> usize {
        self.parent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_follow_unions() {
        let mut uf = UnionFind::default();
        for _ in 0..6 {
            uf.push();
        }
        let r = uf.union_roots(0, 1);
        let r2 = uf.union_roots(2, 3);
        let r = uf.union_roots(uf.find(r), uf.find(r2));
        let mut m = uf.members(r);
        m.sort();
        assert_eq!(m, vec![0, 1, 2, 3]);
        assert_eq!(uf.members(4), vec![4]);
        assert_eq!(uf.find_mut(3), uf.find(0));
        uf.reset(&[0, 1, 2, 3]);
        assert_eq!(uf.members(2), vec![2]);
    }
}
