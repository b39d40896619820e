//! # Notes pallet
//!
//! Every account may keep one short note on chain. The pipeline's test suites use it as a
//! small, observable piece of state that survives (and, across versions, is migrated by)
//! runtime upgrades.
//!
//! Storage version 0: a note is the raw text, `Notes: AccountId -> BoundedVec<u8, MaxNoteLen>`.

#![cfg_attr(not(feature = "std"), no_std)]

pub use pallet::*;

#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

#[frame_support::pallet]
pub mod pallet {
	use frame_support::pallet_prelude::*;
	use frame_system::pallet_prelude::*;

	/// The layout of `Notes` that this code reads and writes.
	const STORAGE_VERSION: StorageVersion = StorageVersion::new(0);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	#[pallet::config]
	pub trait Config: frame_system::Config {
		/// The overarching event type.
		type RuntimeEvent: From<Event<Self>> + IsType<<Self as frame_system::Config>::RuntimeEvent>;

		/// Longest note, in bytes; longer input does not even decode.
		#[pallet::constant]
		type MaxNoteLen: Get<u32>;
	}

	/// The note of each account that has set one.
	#[pallet::storage]
	pub type Notes<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, BoundedVec<u8, T::MaxNoteLen>>;

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// `who` replaced their note.
		NoteSet { who: T::AccountId },
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Store `text` as the caller's note, replacing any earlier one.
		#[pallet::call_index(0)]
		#[pallet::weight(set_note_weight::<T>())]
		pub fn set_note(
			origin: OriginFor<T>,
			text: BoundedVec<u8, T::MaxNoteLen>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Notes::<T>::insert(&who, text);
			Self::deposit_event(Event::NoteSet { who });
			Ok(())
		}
	}

	/// A constant estimate instead of benchmarks: one write plus a fixed amount of execution,
	/// with the largest stored entry as proof size.
	fn set_note_weight<T: Config>() -> Weight {
		let entry = T::AccountId::max_encoded_len()
			.saturating_add(BoundedVec::<u8, T::MaxNoteLen>::max_encoded_len());
		Weight::from_parts(20_000_000, entry as u64).saturating_add(T::DbWeight::get().writes(1))
	}
}
