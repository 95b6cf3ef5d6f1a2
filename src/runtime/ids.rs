//! Typed indices into a gateway's tables, and the vector they index. A `ModelIx` can
//! only index models and a `ProviderIx` only providers, so the parallel tables built
//! from one bundle cannot be read with an index of another kind.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Index, IndexMut};

/// An index into one kind of table.
pub trait Ix: Copy + Eq + fmt::Debug {
    fn new(i: usize) -> Self;
    fn get(self) -> usize;
}

macro_rules! typed_index {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(u32);

        impl Ix for $name {
            fn new(i: usize) -> Self {
                // a bundle's tables are far below 2^32 entries (bundles are verified
                // and size-capped before a gateway is built)
                $name(u32::try_from(i).unwrap_or(u32::MAX))
            }
            fn get(self) -> usize {
                self.0 as usize
            }
        }

        impl $name {
            /// The index as the bundle's tables number it.
            pub fn as_u32(self) -> u32 {
                self.0
            }
        }
    )*};
}

typed_index! {
    /// A model of the bundle (`bundle.content.models`).
    ModelIx;
    /// A provider of the bundle (`bundle.content.providers`).
    ProviderIx;
    /// A load-balancing pool (`bundle.content.pools`).
    PoolIx;
    /// A rule of the decision table (`bundle.content.table.rules`).
    RuleIx;
    /// A fallback of the failover section, by position (`failover.fallbacks`).
    FallbackIx;
    /// A health machine of the bundle (`machines.health`).
    HealthMachineIx;
}

/// A vector indexed by one kind of typed index.
pub struct IxVec<I, T> {
    items: Vec<T>,
    kind: PhantomData<fn(I)>,
}

impl<I: Ix, T> IxVec<I, T> {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn get(&self, i: I) -> Option<&T> {
        self.items.get(i.get())
    }

    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }

    /// Every index with its item.
    pub fn iter_enumerated(&self) -> impl Iterator<Item = (I, &T)> {
        self.items.iter().enumerate().map(|(i, t)| (I::new(i), t))
    }

    pub fn indices(&self) -> impl Iterator<Item = I> {
        (0..self.items.len()).map(I::new)
    }

    /// The first index whose item satisfies `f`.
    pub fn position(&self, f: impl FnMut(&T) -> bool) -> Option<I> {
        self.items.iter().position(f).map(I::new)
    }
}

impl<I, T> FromIterator<T> for IxVec<I, T> {
    fn from_iter<It: IntoIterator<Item = T>>(iter: It) -> Self {
        IxVec {
            items: iter.into_iter().collect(),
            kind: PhantomData,
        }
    }
}

impl<I: Ix, T> Index<I> for IxVec<I, T> {
    type Output = T;
    fn index(&self, i: I) -> &T {
        &self.items[i.get()]
    }
}

impl<I: Ix, T> IndexMut<I> for IxVec<I, T> {
    fn index_mut(&mut self, i: I) -> &mut T {
        &mut self.items[i.get()]
    }
}

impl<'a, I, T> IntoIterator for &'a IxVec<I, T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl<I, T: fmt::Debug> fmt::Debug for IxVec<I, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.items.fmt(f)
    }
}
