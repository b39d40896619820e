//! Storage migrations of this pallet, one module per storage version they produce.

/// Storage version 0 -> 1: a note gains the block at which it was set.
pub mod v1 {
	use crate::{Config, Note, Notes, Pallet};
	#[cfg(feature = "try-runtime")]
	use alloc::vec::Vec;
	use frame_support::{
		migrations::VersionedMigration, pallet_prelude::*, traits::UncheckedOnRuntimeUpgrade,
	};

	/// The version 0 layout, to read notes as they were before the migration.
	#[cfg(any(test, feature = "try-runtime"))]
	pub(crate) mod v0 {
		use super::*;

		#[frame_support::storage_alias]
		pub type Notes<T: Config> = StorageMap<
			Pallet<T>,
			Blake2_128Concat,
			<T as frame_system::Config>::AccountId,
			BoundedVec<u8, <T as Config>::MaxNoteLen>,
		>;
	}

	/// Rewrites every version 0 note as a [`Note`] with `set_at = 0`: the block at which it
	/// was set was never recorded. Use it through [`MigrateV0ToV1`], which checks versions.
	pub struct InnerMigrateV0ToV1<T>(PhantomData<T>);

	impl<T: Config> UncheckedOnRuntimeUpgrade for InnerMigrateV0ToV1<T> {
		fn on_runtime_upgrade() -> Weight {
			let mut translated: u64 = 0;
			Notes::<T>::translate::<BoundedVec<u8, T::MaxNoteLen>, _>(|_who, text| {
				translated = translated.saturating_add(1);
				Some(Note { text, set_at: Zero::zero() })
			});
			T::DbWeight::get().reads_writes(translated, translated)
		}

		#[cfg(feature = "try-runtime")]
		fn pre_upgrade() -> Result<Vec<u8>, DispatchError> {
			Ok((v0::Notes::<T>::iter().count() as u32).encode())
		}

		#[cfg(feature = "try-runtime")]
		fn post_upgrade(state: Vec<u8>) -> Result<(), DispatchError> {
			let before = u32::decode(&mut &state[..])
				.map_err(|_| DispatchError::Other("pre_upgrade state does not decode"))?;
			ensure!(Notes::<T>::iter().count() as u32 == before, "a note was lost in migration");
			Ok(())
		}
	}

	/// Runs [`InnerMigrateV0ToV1`] only while the pallet's on-chain storage version is 0, then
	/// sets it to 1; a no-op on every later upgrade.
	pub type MigrateV0ToV1<T> = VersionedMigration<
		0,
		1,
		InnerMigrateV0ToV1<T>,
		Pallet<T>,
		<T as frame_system::Config>::DbWeight,
	>;
}
