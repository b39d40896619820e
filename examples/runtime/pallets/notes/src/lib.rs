//! # Notes pallet
//!
//! Every account may keep one short note on chain. The pipeline's test suites use it as a
//! small, observable piece of state that survives (and, across versions, is migrated by)
//! runtime upgrades.
//!
//! Storage version 1: a note is a [`Note`], its text and the block at which it was set.
//! Version 0 kept the raw text only; [`migrations::v1::MigrateV0ToV1`] converts it.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

pub mod migrations;

#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

#[frame_support::pallet]
pub mod pallet {
	use frame_support::pallet_prelude::*;
	use frame_system::pallet_prelude::*;

	/// The layout of `Notes` that this code reads and writes.
	const STORAGE_VERSION: StorageVersion = StorageVersion::new(1);

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

	/// A note and the block at which it was set.
	#[derive(
		Encode,
		Decode,
		MaxEncodedLen,
		TypeInfo,
		CloneNoBound,
		PartialEqNoBound,
		EqNoBound,
		RuntimeDebugNoBound,
	)]
	#[scale_info(skip_type_params(T))]
	#[codec(mel_bound())]
	pub struct Note<T: Config> {
		pub text: BoundedVec<u8, T::MaxNoteLen>,
		/// Zero for notes migrated from storage version 0, whose block is unknown.
		pub set_at: BlockNumberFor<T>,
	}

	/// The note of each account that has set one.
	#[pallet::storage]
	pub type Notes<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, Note<T>>;

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// `who` replaced their note.
		NoteSet { who: T::AccountId },
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Store `text` as the caller's note, with the current block, replacing any earlier one.
		#[pallet::call_index(0)]
		#[pallet::weight(set_note_weight::<T>())]
		pub fn set_note(
			origin: OriginFor<T>,
			text: BoundedVec<u8, T::MaxNoteLen>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let set_at = frame_system::Pallet::<T>::block_number();
			Notes::<T>::insert(&who, Note { text, set_at });
			Self::deposit_event(Event::NoteSet { who });
			Ok(())
		}
	}

	/// A constant estimate instead of benchmarks: one write plus a fixed amount of execution,
	/// with the largest stored entry as proof size.
	fn set_note_weight<T: Config>() -> Weight {
		let entry = T::AccountId::max_encoded_len().saturating_add(Note::<T>::max_encoded_len());
		Weight::from_parts(20_000_000, entry as u64).saturating_add(T::DbWeight::get().writes(1))
	}
}
