// The site's own configuration: not a document.
export default {
  title: 'Clinic handbook',
  url: 'https://handbook.example.org',
  baseUrl: '/',
  presets: [['classic', {docs: {showLastUpdateTime: true, showLastUpdateAuthor: true}}]],
};
